/**
 * The optional HTTP endpoint (`--metrics-addr`): `/metrics` (Prometheus text), `/stats` (JSON),
 * `/healthz` (readiness). Read-only, GET and HEAD only, on loopback unless told otherwise. It runs
 * on the main thread beside the gateway's socket, so it does no work until scraped.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { MetricsEndpointError, describe } from '../errors.js';
import type { MetricsAddress } from '../options.js';
import { CONTENT_TYPE } from './prometheus.js';

export interface EndpointHandlers {
  /** The Prometheus exposition. */
  metrics(): Promise<string>;
  /** The `/stats` document, serialisable as JSON. */
  stats(): Promise<unknown>;
  /** Serving the gateway's socket and not shutting down (the endpoint closes early in a shutdown). */
  ready(): boolean;
}

export interface MetricsEndpoint {
  /** Where it listens (the actual port when 0 was asked for). */
  readonly address: MetricsAddress;
  /** `http://host:port` (IPv6 hosts in brackets). */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * How long to retry a port in use. On a gateway reload the next runner starts while the previous
 * one shuts down; that one closes its endpoint first thing, so the port frees within milliseconds.
 */
const ADDRESS_IN_USE_RETRY_MS = 2000;
const RETRY_EVERY_MS = 100;

export async function startMetricsEndpoint(addr: MetricsAddress, handlers: EndpointHandlers, logger: Logger): Promise<MetricsEndpoint> {
  const server = createServer((req, res) => {
    route(req, res, handlers).catch((err: unknown) => {
      logger.warn({ err: describe(err), path: req.url }, 'metrics endpoint: request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${describe(err)}\n`, req.method === 'HEAD');
      else res.destroy();
    });
  });
  // The endpoint must never keep the process alive on its own, nor a slow client the shutdown.
  server.unref();
  const giveUpAt = performance.now() + ADDRESS_IN_USE_RETRY_MS;
  for (;;) {
    const err = await listen(server, addr);
    if (err === null) break;
    if (err.code === 'EADDRINUSE' && performance.now() < giveUpAt) {
      logger.debug({ host: addr.host, port: addr.port }, 'metrics endpoint: the address is in use, retrying');
      await new Promise((resolve) => setTimeout(resolve, RETRY_EVERY_MS));
      continue;
    }
    const reason = err.code === 'EADDRINUSE' ? 'the address is in use' : err.code === 'EADDRNOTAVAIL' ? 'not an address of this machine' : describe(err);
    throw new MetricsEndpointError(`the metrics endpoint cannot listen on ${addr.host}:${addr.port} (--metrics-addr): ${reason}`, { cause: err });
  }
  server.on('error', (err) => logger.error({ err }, 'metrics endpoint error'));
  const bound = server.address() as AddressInfo;
  const address = Object.freeze({ host: addr.host, port: bound.port });
  const url = `http://${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${bound.port}`;
  return { address, url, close: () => closeServer(server) };
}

function listen(server: Server, addr: MetricsAddress): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const failed = (err: NodeJS.ErrnoException): void => resolve(err);
    server.once('error', failed);
    server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => {
      server.off('error', failed);
      resolve(null);
    });
  });
}

async function route(req: IncomingMessage, res: ServerResponse, handlers: EndpointHandlers): Promise<void> {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.setHeader('Allow', 'GET, HEAD');
    send(res, 405, 'text/plain; charset=utf-8', 'only GET and HEAD\n', head);
    return;
  }
  const path = (req.url ?? '/').split('?', 1)[0];
  switch (path) {
    case '/metrics':
      send(res, 200, CONTENT_TYPE, await handlers.metrics(), head);
      return;
    case '/stats':
      send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(await handlers.stats(), null, 2)}\n`, head);
      return;
    case '/healthz': {
      const ready = handlers.ready();
      send(res, ready ? 200 : 503, 'text/plain; charset=utf-8', ready ? 'ok\n' : 'shutting down\n', head);
      return;
    }
    default:
      send(res, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /stats or /healthz\n', head);
  }
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(head ? undefined : body);
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
