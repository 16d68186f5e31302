import type { FastifyPluginAsync } from 'fastify';
import type { MeshbusHttpOptions } from './plugin.js';

/**
 * The `meshbusHttp` fastify plugin as `@meshbus/core/http` exports it: the
 * same plugin (plugin.ts), whose routes, views and dashboard page are loaded
 * when it is registered rather than when the subpath is imported, so that a
 * process that imports the subpath and serves it on demand
 * (startHttpOnDemand) loads them with its first request.
 */
export const meshbusHttp: FastifyPluginAsync<MeshbusHttpOptions> = async (app, options) => {
  const { meshbusHttp: plugin } = await import('./plugin.js');
  await plugin(app, options);
};

/** Fastify's plugin metadata, as plugin.ts's: fastify 5, encapsulated. */
Object.assign(meshbusHttp, { [Symbol.for('plugin-meta')]: { name: 'meshbus-http', fastify: '5.x' } });
