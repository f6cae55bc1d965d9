import { describe, expect, it } from '@jest/globals';
import { GRPC_TRAILERS } from './cases.js';
import { judgeTrailers, parseNghttpVerbose } from './trailers.js';

// The received side of `nghttp -v -n -d BODY` through the sidecar, as captured (sent frames trimmed).
const WITH_TRAILERS = `[  0.001] send DATA frame <length=105, flags=0x01, stream_id=13>
          ; END_STREAM
[  0.003] recv SETTINGS frame <length=24, flags=0x00, stream_id=0>
          (niv=4)
[  0.012] recv (stream_id=13) :status: 200
[  0.012] recv (stream_id=13) server: nginx/1.22.1
[  0.012] recv (stream_id=13) content-type: application/grpc
[  0.012] recv (stream_id=13) content-length: 27
[  0.012] recv HEADERS frame <length=53, flags=0x04, stream_id=13>
          ; END_HEADERS
          (padlen=0)
          ; First response header
[  0.013] recv DATA frame <length=27, flags=0x00, stream_id=13>
[  0.013] recv (stream_id=13) grpc-status: 0
[  0.014] recv (stream_id=13) grpc-message: ok
[  0.014] recv HEADERS frame <length=26, flags=0x05, stream_id=13>
          ; END_STREAM | END_HEADERS
          (padlen=0)
[  0.014] send GOAWAY frame <length=8, flags=0x00, stream_id=0>
`;

// The same answer with its trailers dropped: the body's DATA frame ends the stream.
const WITHOUT_TRAILERS = `[  0.003] recv (stream_id=13) :status: 200
[  0.003] recv (stream_id=13) content-type: application/grpc
[  0.003] recv HEADERS frame <length=49, flags=0x04, stream_id=13>
          ; END_HEADERS
[  0.003] recv DATA frame <length=27, flags=0x01, stream_id=13>
          ; END_STREAM
`;

describe('parseNghttpVerbose', () => {
  it('groups the received fields by the HEADERS frame that carried them and adds up the DATA', () => {
    const response = parseNghttpVerbose(WITH_TRAILERS);
    expect(response.dataBytes).toBe(27);
    expect(response.blocks).toEqual([
      { fields: { ':status': '200', server: 'nginx/1.22.1', 'content-type': 'application/grpc', 'content-length': '27' }, endStream: false },
      { fields: { 'grpc-status': '0', 'grpc-message': 'ok' }, endStream: true },
    ]);
  });
});

describe('judgeTrailers', () => {
  it('accepts a 200 whose body is followed by the expected trailers ending the stream', () => {
    expect(judgeTrailers(parseNghttpVerbose(WITH_TRAILERS), GRPC_TRAILERS)).toEqual({ ok: true, status: '200', trailers: { 'grpc-status': '0', 'grpc-message': 'ok' } });
  });

  it('fails an answer whose trailers were lost', () => {
    const check = judgeTrailers(parseNghttpVerbose(WITHOUT_TRAILERS), GRPC_TRAILERS);
    expect(check.ok).toBe(false);
    expect(check.problem).toBe('no trailers arrived (wanted grpc-status: 0, grpc-message: ok)');
  });

  it('fails trailers with a different value and names what arrived', () => {
    const changed = WITH_TRAILERS.replace('grpc-message: ok', 'grpc-message: nope');
    expect(judgeTrailers(parseNghttpVerbose(changed), GRPC_TRAILERS).problem).toBe('trailers grpc-status: 0, grpc-message: nope; wanted grpc-status: 0, grpc-message: ok');
  });

  it('fails an answer other than 200, or none at all', () => {
    expect(judgeTrailers(parseNghttpVerbose(WITH_TRAILERS.replace(':status: 200', ':status: 503')), GRPC_TRAILERS).problem).toBe('status 503, not 200');
    expect(judgeTrailers(parseNghttpVerbose(''), GRPC_TRAILERS).problem).toBe('status none, not 200');
  });
});
