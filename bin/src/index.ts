/**
 * `@meshbus/cli`: the `meshbus` command (bin: meshbus.js). Exported for tests
 * and for embedding a node configured the way `meshbus start` is.
 */
export { main, run, version, COMMANDS, EXIT, START } from './main.js';
export { startServer, type RunningServer } from './start.js';
export { loadStartConfig, parseDurableTopic, START_DEFAULTS, START_SETTINGS, type StartConfig } from './config.js';
export { UsageError, formatHelp, parseCommand, type CommandSpec, type OptionSpec, type ParsedArgs } from './command-spec.js';
export { traceEvent, formatTrace } from './trace-command.js';
export { logUnhandledRejections } from './rejection-guard.js';
export { readHistory, formatHistory, type TopicHistory } from './history-command.js';
export { runBench, formatBench, percentile, type BenchResult } from './bench-command.js';
export { readCluster, formatCluster, type NodeInfo, type ClusterInfo } from './cluster-command.js';
export { clientTarget, openClient, DEFAULT_SERVER, type ClientTarget } from './client-connect.js';
