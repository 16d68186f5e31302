import type { CommandSpec, OptionSpec } from './command-spec.js';

// The option tables of the commands other than start (whose table is built from
// config.ts), apart from what each command runs: `meshbus --help`, `<cmd> --help`
// and argument parsing read only these, so they load nothing but this file, and a
// command's runner (and the SDK behind pub/sub/req/trace) is imported when it runs.

export const DEV: CommandSpec = {
  name: 'dev',
  args: '',
  summary: 'run a local mesh of N nodes on this machine',
  description:
    'Runs N real `meshbus start` processes on 127.0.0.1, all seeded with the first, for seeing and debugging the whole system. Node i listens for clients on base-port+i, for peers on cluster-base+i, for HTTP on http-base+i and for WebSocket on ws-base+i. The banner gives the pid of each node: a node killed from outside (kill -9 <pid>, or SIGTERM: it drains) is reported and the others keep running (the mesh routes around it). Ctrl-C, SIGTERM or SIGHUP (its terminal closed) stops them all (exit 0); if one node fails on its own (e.g. a port is taken, or it crashes) the others are stopped and the command exits 1.',
  options: [
    { name: 'nodes', short: 'n', arg: 'n', default: '3', help: 'How many nodes to run (1 to 32).' },
    { name: 'base-port', arg: 'port', default: '4480', help: 'Client port of the first node; node i takes base-port+i.' },
    { name: 'cluster-base', arg: 'port', defaultText: 'base-port+1000', help: 'Peer (cluster) port of the first node; node i takes cluster-base+i.' },
    { name: 'http-base', arg: 'port', default: '8480', help: 'HTTP API port of the first node; node i takes http-base+i.' },
    { name: 'ws-base', arg: 'port', default: '9480', help: 'WebSocket port of the first node; node i takes ws-base+i.' },
    { name: 'log-level', arg: 'level', default: 'warn', help: 'Log level of every node: debug, info, warn, error or silent.' },
    { name: 'mesh', arg: 'mode', default: 'full', help: 'Mesh mode: full (every node links to every other) or partial (links to the seed only).' },
  ],
};

/** Options every client command takes (each also read from its MESHBUS_* variable; the flag wins). */
export const CONNECT_OPTIONS: OptionSpec[] = [
  {
    name: 'server',
    short: 's',
    arg: 'host:port',
    defaultText: 'MESHBUS_SERVER, else 127.0.0.1:4480',
    help: 'Node to connect to (host:port, tls://, ws://, wss://); a comma-separated list is tried in order, and sub/reply move to the next one when a node drains.',
  },
  { name: 'token', arg: 'token', defaultText: 'MESHBUS_TOKEN', help: 'Client token (or JWT) the node requires, if any.' },
  { name: 'tls-ca', arg: 'file.pem', defaultText: 'MESHBUS_TLS_CA', help: 'CA bundle (PEM) that signs the node\'s certificate; a --server host:port without scheme is then reached over TLS.' },
];

/** How sub, reply and req print events. */
const PRINT_OPTIONS: OptionSpec[] = [
  { name: 'headers', help: 'Show each event\'s headers (as JSON, after the topic).' },
  { name: 'json', help: 'Print one JSON object per event and line (topic, data, encoding when base64, size, headers, reply, position, timestamp), for scripts.' },
  { name: 'raw', help: 'Print only each payload, one per line (base64 if not UTF-8).' },
];

/** Following a node that drains or dies (sub, reply). */
const RECONNECT_OPTION: OptionSpec = {
  name: 'reconnects',
  arg: 'n',
  default: '5',
  help: 'Reconnection attempts (to any server of --server or announced by the mesh) after a lost connection before exiting 1; 0: exit at once.',
};

export const PUB: CommandSpec = {
  name: 'pub',
  args: '<topic> <data>',
  summary: 'publish an event',
  description:
    'Publishes <data> (UTF-8 text) on <topic>, a topic without wildcards, then exits once the node has received it: 0 when the node took every event, 1 with the node\'s refusal (permission denied, rate limited) otherwise. With --ack (or --delay) each event waits for the node\'s acknowledgement, which on a durable topic carries its position in the topic\'s history.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'count', arg: 'n', default: '1', help: 'Publish the event this many times (1 or more).' },
    { name: 'header', arg: 'key=value', multiple: true, help: 'Add a header to the event; the value may be empty (key=).' },
    { name: 'ack', help: 'Wait for the node to acknowledge each event and print its position (durable topics); exit 1 when refused (e.g. MB_ERR_NOT_DURABLE).' },
    { name: 'delay', arg: 'duration', help: 'Have the node publish the event this much later (milliseconds, or 500ms, 5s, 15m, 1h) (durable topics, needs Redis); implies --ack.' },
    { name: 'json', help: 'Print one JSON object per event (n, topic, epoch and offset when acknowledged with a position), or one for the run without --ack.' },
  ],
};

export const SUB: CommandSpec = {
  name: 'sub',
  args: '<pattern>',
  summary: 'print the events of a topic pattern',
  description:
    'Subscribes to <pattern> (`*` matches one token, `>` one or more trailing tokens) and prints each event as `[#n] topic: payload` (payload base64 if not UTF-8); says "subscribed" once the node accepted the subscription, else prints its refusal and exits 1. Runs until --count events arrived, or Ctrl-C / SIGTERM. When the node drains or is lost, it resubscribes on another server (--server a,b or the peers the mesh announces); events published meanwhile are not replayed.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'queue', arg: 'group', help: 'Join this queue group: each event goes to one member of the group.' },
    { name: 'count', arg: 'n', help: 'Exit 0 after this many events (1 or more); default: run until stopped.' },
    ...PRINT_OPTIONS,
    RECONNECT_OPTION,
  ],
};

export const REPLY: CommandSpec = {
  name: 'reply',
  args: '<topic> [<data>]',
  summary: 'serve requests on a topic',
  description:
    'Answers every request on <topic> (a pattern is allowed) with <data>, or with the request\'s own payload and headers given --echo, and prints each request served. Runs until --count requests were answered, or Ctrl-C / SIGTERM (exit 0 either way; a refused subscription exits 1); follows a draining node like sub.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'echo', help: 'Answer each request with its own payload and headers instead of <data>.' },
    { name: 'queue', arg: 'group', help: 'Serve as a member of this queue group: each request goes to one member.' },
    { name: 'count', arg: 'n', help: 'Exit 0 after answering this many requests (1 or more); default: run until stopped.' },
    { name: 'header', arg: 'key=value', multiple: true, help: 'Add a header to each reply (with <data>).' },
    ...PRINT_OPTIONS,
    RECONNECT_OPTION,
  ],
};

export const REQ: CommandSpec = {
  name: 'req',
  args: '<topic> <data>',
  summary: 'send a request and print the reply',
  description: 'Sends <data> as a request on <topic> and prints the first reply. Exits 1 on timeout or when nobody serves the topic.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'timeout', arg: 'duration', default: '5000', help: 'Give up waiting for a reply after this long: milliseconds (1 or more), or 500ms, 5s, 2m.' },
    { name: 'header', arg: 'key=value', multiple: true, help: 'Add a header to the request; the value may be empty (key=).' },
    { name: 'json', help: 'Print the reply as one JSON object (topic, data, encoding when base64, size, headers) instead of its payload.' },
  ],
};

export const TRACE: CommandSpec = {
  name: 'trace',
  args: '<topic> <data>',
  summary: 'publish one traced event and show its path through the mesh',
  description:
    'Publishes <data> on <topic> with a trace id and prints, one line per node, where the event went and how long each node took. Exits 1 when no node reported the event.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'wait', arg: 'duration', default: '1000', help: 'Collect hop reports for this long: milliseconds (1 or more), or 500ms, 5s.' },
    { name: 'json', help: 'Print the hops as JSON instead of a table.' },
  ],
};

export const HISTORY: CommandSpec = {
  name: 'history',
  args: '<topic>',
  summary: 'print the stored history of a durable topic',
  description:
    'Reads the history a node keeps for <topic> (a literal topic matching a durable rule with history, on a node started with --redis) and prints its epoch and last offset, then the last --last events, one per line as `offset  time  payload`. Exits 1 when the topic is not durable on that node (MB_ERR_NOT_DURABLE).',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'last', arg: 'n', default: '20', help: 'How many of the newest events to print (0: only the positions; at most 10000).' },
    { name: 'json', help: 'Print one JSON object: topic, epoch, lastOffset, complete (false when older events asked for are no longer stored) and the events (offset, timestamp, data, headers).' },
    { name: 'wait', arg: 'duration', default: '5000', help: 'Give up when the node has not sent the history within this long: milliseconds, or 500ms, 5s.' },
  ],
};

/** Options of the commands that read a node's HTTP API. */
const HTTP_OPTIONS: OptionSpec[] = [
  { name: 'http', arg: 'url', defaultText: 'MESHBUS_HTTP, else http://127.0.0.1:8480', help: 'Base URL of a node\'s HTTP API.' },
  { name: 'admin-token', arg: 'token', defaultText: 'MESHBUS_ADMIN_TOKEN', help: 'Bearer token of the HTTP API, when the node has --admin-token.' },
  { name: 'tls-ca', arg: 'file.pem', defaultText: 'MESHBUS_TLS_CA', help: 'CA bundle (PEM) that signs the node\'s certificate, for an https:// URL.' },
  { name: 'json', help: 'Print the views as JSON ({ node, cluster }) instead of tables.' },
];

export const CLUSTER: CommandSpec = {
  name: 'cluster',
  args: '',
  summary: 'show the nodes of the mesh (HTTP API)',
  description:
    'Reads GET /v1/node and GET /v1/cluster from one node\'s HTTP API and prints that node (version, uptime, readiness, connections) and a table of every node of the mesh it knows: id, name, address, link state, round trip. Exits 1 when the API cannot be reached or refuses the token.',
  options: HTTP_OPTIONS,
};

export const SERVER: CommandSpec = {
  name: 'server',
  args: 'list',
  summary: 'same as cluster (`server list`)',
  description: '`meshbus server list` is `meshbus cluster`, for users of `nats server list`.',
  options: HTTP_OPTIONS,
};

export const BENCH: CommandSpec = {
  name: 'bench',
  args: '<topic>',
  summary: 'measure publish/subscribe throughput and latency',
  description:
    'Runs --sub subscribers (each its own connection, subscribed to <topic>) and --pub publishers (each its own connection) that share --msgs events of --size bytes, then prints publish and delivery rates (msgs/s, MB/s) and the latency from publish to delivery (p50, p90, p99, max; events of at least 8 bytes carry their send time). A progress line is shown on a terminal. Give several --server addresses to spread the clients over a mesh (client i uses server i mod n). Exits 1 when subscribers missed events within --timeout.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'pub', arg: 'n', default: '1', help: 'Publishing connections (0 to 1000); 0: the subscribers wait for --msgs events from another run (e.g. `bench --sub 0` elsewhere).' },
    { name: 'sub', arg: 'n', default: '1', help: 'Subscribing connections (0 to 1000).' },
    { name: 'msgs', arg: 'n', default: '100000', help: 'Events published in all, shared among the publishers (1 or more).' },
    { name: 'size', arg: 'bytes', default: '128', help: 'Payload size in bytes (0 to 1048576); 8 or more to measure latency.' },
    { name: 'timeout', arg: 'duration', default: '60000', help: 'Give up waiting for the subscribers this long after the last publish: milliseconds, or 500ms, 30s, 2m.' },
    { name: 'json', help: 'Print the summary as one JSON object.' },
  ],
};

export const LEAF_KEY: CommandSpec = {
  name: 'leaf-key',
  args: '<label>',
  summary: 'issue a leaf node\'s own key from the cluster secret',
  description:
    'Prints the key of the leaf named <label> (1..64 characters of A-Z, a-z, 0-9, _ and -) under the cluster secret, on stdout (nothing else): start the leaf with --mesh leaf --leaf-key <key> instead of --cluster-secret. Its hubs check the key against their --cluster-secret and make the leaf\'s node id from it, so a leaf can speak only as itself and cannot join the mesh as a full node; --deny-leaf-keys <label> on the hubs revokes it.',
  options: [{ name: 'cluster-secret', arg: 'secret', help: 'The hubs\' cluster secret (also MESHBUS_CLUSTER_SECRET).' }],
};

export const TOKEN: CommandSpec = {
  name: 'token',
  args: '',
  summary: 'mint a client token (JWT) with permissions, for development',
  description:
    'Signs a client token for --sub with jose and prints it on stdout (nothing else), for `--token` or an SDK\'s `token` option. Sign with --secret (HS256, the node\'s --jwt-secret) or --private-key (a PEM file: Ed25519 → EdDSA, EC P-256/384/521 → ES256/384/512, RSA → RS256, matching the node\'s --jwt-public-key or a key of its JWKS, named by --kid). Without --pub, --pub-deny, --sub-allow and --sub-deny the token allows everything. For development: a production token service keeps its keys elsewhere.',
  options: [
    { name: 'sub', arg: 'subject', help: 'Subject of the token (sub claim): who the client is. Required.' },
    { name: 'secret', arg: 'secret', help: 'HS256 secret to sign with (also MESHBUS_JWT_SECRET).' },
    { name: 'private-key', arg: 'file.pem', help: 'Private key (PEM file) to sign with instead of a secret.' },
    { name: 'kid', arg: 'id', help: 'Key id written in the token header, naming the key in a JWKS.' },
    { name: 'pub', arg: 'pattern', multiple: true, help: 'Topic pattern the client may publish to (permissions.publish.allow).' },
    { name: 'pub-deny', arg: 'pattern', multiple: true, help: 'Topic pattern the client may not publish to, even inside --pub (permissions.publish.deny).' },
    { name: 'sub-allow', arg: 'pattern', multiple: true, help: 'Topic pattern the client may subscribe to (permissions.subscribe.allow).' },
    { name: 'sub-deny', arg: 'pattern', multiple: true, help: 'Topic pattern the client may not subscribe to, even inside --sub-allow (permissions.subscribe.deny).' },
    { name: 'ttl', arg: 'duration', default: '1h', help: 'How long the token is valid: seconds, or a number with s, m, h or d (90s, 15m, 1h, 7d); 0 for no expiry.' },
    { name: 'aud', arg: 'audience', help: 'Audience (aud claim), for nodes started with --jwt-audience.' },
    { name: 'iss', arg: 'issuer', help: 'Issuer (iss claim), for nodes started with --jwt-issuer.' },
  ],
};
