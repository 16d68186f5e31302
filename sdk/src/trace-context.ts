import type { Client } from './client.js';

/**
 * The part of `@opentelemetry/api` the SDK uses: the active context, its
 * span, and the application's registered propagator (W3C trace context by
 * default in the OpenTelemetry SDKs). Structural, so the SDK has no type
 * dependency on the package.
 */
export interface OpenTelemetryApi {
  context: { active(): unknown };
  trace: { getSpanContext(ctx: never): { traceId: string } | undefined };
  propagation: { inject(ctx: never, carrier: Record<string, string>): void };
}

let loaded: Promise<OpenTelemetryApi | undefined> | undefined;

/**
 * `@opentelemetry/api` when the application has it installed (an optional
 * peer dependency), else undefined. Imported once per process, on first
 * connect; the specifier is not a literal, so bundlers never pull it in.
 */
export function loadOpenTelemetry(): Promise<OpenTelemetryApi | undefined> {
  const name = '@opentelemetry/api';
  loaded ??= (import(/* @vite-ignore */ /* webpackIgnore: true */ name) as Promise<OpenTelemetryApi>).then(
    (api) => (typeof api?.propagation?.inject === 'function' ? api : undefined),
    () => undefined,
  );
  return loaded;
}

/**
 * Headers with the active span's trace context (`traceparent`, `tracestate`,
 * whatever the application's propagator writes) added; `headers` itself when
 * no span is active or it already names a `traceparent` (an explicit one wins).
 * Never throws: a failing propagator leaves the headers as they were.
 */
export function injectTraceContext(api: OpenTelemetryApi, headers: Record<string, string> | undefined): Record<string, string> | undefined {
  if (headers?.traceparent !== undefined) return headers;
  try {
    const ctx = api.context.active();
    if (api.trace.getSpanContext(ctx as never) === undefined) return headers;
    const out: Record<string, string> = { ...headers };
    api.propagation.inject(ctx as never, out);
    return out;
  } catch {
    return headers;
  }
}

/**
 * Makes `client` carry the active OpenTelemetry trace context in the headers
 * of what it sends: `publish`, `request` and replies (`msg.respond`), so the
 * receivers (and nodes exporting spans, `--otlp-endpoint`) continue the
 * application's trace. Costs one context lookup per send while no span is
 * active. The Node entry's `connect` applies it when `@opentelemetry/api` is
 * installed; other entries can call it with the API themselves. Returns `client`.
 */
export function withTraceContext(client: Client, api: OpenTelemetryApi): Client {
  type Opts = { headers?: Record<string, string> } | undefined;
  const add = <O extends Opts>(o: O): O => {
    const headers = injectTraceContext(api, o?.headers);
    return headers === o?.headers ? o : ({ ...o, headers } as O);
  };
  const publish = client.publish.bind(client) as (t: string, p?: unknown, o?: Opts) => void;
  const request = client.request.bind(client);
  const respond = client.respond.bind(client);
  Object.assign(client, {
    publish: (topic: string, payload?: unknown, options?: Opts) => publish(topic, payload, add(options)),
    request: (topic: string, payload?: unknown, options?: Parameters<Client['request']>[2]) => request(topic, payload, add(options)),
    respond: (reply: string, correlation: number, payload: unknown, options?: Parameters<Client['respond']>[3]) => respond(reply, correlation, payload, add(options)),
  });
  return client;
}
