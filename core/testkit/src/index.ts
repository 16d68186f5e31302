/**
 * @meshbus/testkit: the helpers every meshbus test suite shares (private, not
 * published). Tests import these instead of copying them.
 */
export { sleep, until, untilResolved, heldWithin } from './wait.js';
export { freePort, freePortRange, portFree } from './ports.js';
export { tcpProxy, type TcpProxy } from './tcp-proxy.js';
export { LineProcess } from './line-process.js';
export { Fixture, nodeKit, url, type Closable, type FixtureOptions, type NodeLike } from './fixture.js';
export { RawClient, RawFrames, RawWs, floodPublisher, frameWithExt, stuckSubscriber, type Got } from './raw-client.js';
export {
  deleteKeys,
  ping,
  redisServerInstalled,
  requireRedisServer,
  sharedRedisUrl,
  startRedisServer,
  stopStartedRedis,
  testRedis,
  type RedisServer,
  type SkipCtx,
  type TestRedis,
} from './redis.js';
export { durableSuite } from './durable-suite.js';
export { ownRedisServers } from './own-redis.js';
export { memoryNode, type MemoryNode, type InputBudgetCounters } from './memory-node.js';
export { logCapture } from './log-capture.js';
export { MESHBUS_BIN, loggedField, runCli, spawnCli, spawnCliOnFreePorts, spawnNode, stopProcesses, trackedProcesses, untilProcess, type CliProcess, type NodeProcess } from './processes.js';
export { CHROMIUM, CHROMIUM_ARGS, launchChromium, noBrowser, type BrowserContext, type Chromium } from './chromium.js';
export { RECORD_IMPORTS_HOOK, packagesIn } from './imports.js';
export { cleanups, type Cleanup } from './cleanups.js';
export { makePki, pkiForFile, type TestPki } from './tls-pki.js';
export { PROMTOOL, openMetricsClashes, promtoolCheck } from './promtool.js';
export {
  redisCall,
  startRedisCluster,
  startSentinelSetup,
  topologyToolsInstalled,
  type SentinelOptions,
  type SentinelTopology,
  type Topology,
} from './redis-topology.js';
