import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface HttpResponse {
  status: number;
  body: string;
}

/** A plain GET with an optional CA and bearer token; no keep-alive, so probes leave no sockets behind. */
export function httpGet(
  url: string,
  opts: { ca?: string; token?: string; timeoutMs?: number } = {},
): Promise<HttpResponse> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      u,
      {
        method: 'GET',
        agent: false,
        ca: opts.ca,
        headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
        timeout: opts.timeoutMs ?? 2_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** A probe for `waitUntilReady`: true when GET `url` answers 200 (and `accept(body)` if given). */
export function httpOk(
  url: string,
  opts: { ca?: () => string | undefined; token?: string; accept?: (body: string) => boolean } = {},
): () => Promise<boolean> {
  return async () => {
    const ca = opts.ca?.();
    if (opts.ca && ca === undefined) return false;
    const res = await httpGet(url, { ca, token: opts.token });
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${res.body.slice(0, 200)}`);
    return opts.accept ? opts.accept(res.body) : true;
  };
}
