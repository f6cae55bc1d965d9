// Kubernetes authentication: each token is checked with a TokenReview (authentication.k8s.io/v1)
// for the audience `tsmesh-ca`; the identity is the service account the API server names.
import { AuthenticationV1Api, type KubeConfig, type V1TokenReview } from '@kubernetes/client-node';
import { err, type Logger, type Result } from '@tsmesh/common';
import { CaError } from '../errors.js';
import { parseServiceAccountUsername, type WorkloadIdentity } from '../identity.js';
import { CA_AUDIENCE, type Authenticator } from './authenticator.js';

export interface TokenReviewOptions {
  /** Defaults to `tsmesh-ca`. */
  readonly audience?: string;
  readonly log?: Logger;
}

export class TokenReviewAuthenticator implements Authenticator {
  readonly kind = 'token-review';
  private readonly api: AuthenticationV1Api;
  private readonly audience: string;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: TokenReviewOptions = {},
  ) {
    this.api = kubeConfig.makeApiClient(AuthenticationV1Api);
    this.audience = options.audience ?? CA_AUDIENCE;
  }

  async authenticate(token: string): Promise<Result<WorkloadIdentity, CaError>> {
    let review: V1TokenReview;
    try {
      review = await this.api.createTokenReview({
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token, audiences: [this.audience] },
        },
      });
    } catch (cause) {
      this.options.log?.warn({ err: cause }, 'TokenReview request failed');
      return err(
        new CaError('TOKEN_REVIEW_UNAVAILABLE', `cannot check the token with the Kubernetes API: ${describe(cause)}`, { cause }),
      );
    }
    const status = review.status;
    if (status?.authenticated !== true) {
      const reason = status?.error ? `: ${status.error}` : '';
      return err(new CaError('TOKEN_INVALID', `the Kubernetes API did not authenticate the token${reason}`));
    }
    if (!(status.audiences ?? []).includes(this.audience)) {
      return err(new CaError('TOKEN_AUDIENCE', `token is not meant for audience "${this.audience}"`));
    }
    const username = status.user?.username;
    if (username === undefined || username === '') {
      return err(new CaError('TOKEN_IDENTITY', 'the TokenReview names no user'));
    }
    return parseServiceAccountUsername(username);
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'number' ? `HTTP ${code}` : error.message.split('\n')[0] ?? 'unknown error';
  }
  return String(error);
}
