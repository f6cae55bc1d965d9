// What the traffic-policy probe (run in pods) and the suite share: the replicas' fault modes and
// statistics, and the clients' results. Types and constants only: importing it runs nothing.

/**
 * HTTP modes: ok; flaky (503 on every other request, the 1st included); flaky30 (500 on 3 of every
 * 10 requests, never two in a row); fail (500 always); down (503 always); hang (never answers);
 * slow (answers 200 after --slow-ms).
 */
export type HttpMode = 'ok' | 'flaky' | 'flaky30' | 'fail' | 'down' | 'hang' | 'slow';
/** gRPC modes: ok; unavailable (UNAVAILABLE always); hang (never answers). */
export type GrpcMode = 'ok' | 'unavailable' | 'hang';

/** What one port received: requests (calls), answers by status, the most handled at once, and its connections (HTTP ports). */
export interface PortStats {
  mode: string;
  received: number;
  statuses: Record<string, number>;
  maxInFlight: number;
  /** Connections accepted, open now, and the most open at once. */
  connections?: number;
  open?: number;
  maxOpen?: number;
}
export type ServerStats = Record<string, PortStats>;

export const STATS_PORT = 9901;
export const STATS_URL = `http://127.0.0.1:${STATS_PORT}/`;

export interface GrpcCall {
  code: number;
  details: string;
  server?: string;
  ms: number;
}

export interface TimelineAnswer {
  at: number;
  status: number;
  server: string;
}
export interface TimelineReport {
  answers: TimelineAnswer[];
  errors: string[];
  /** Each /clusters poll: when, and the endpoints (ip:port) of the watched Service held ejected. */
  ejections: Array<{ at: number; ejected: string[]; endpoints: number }>;
}
