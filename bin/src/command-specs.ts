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
    'Runs N real `meshbus start` processes on 127.0.0.1, all seeded with the first, for seeing and debugging the whole system. Node i listens for clients on base-port+i, for peers on cluster-base+i, for HTTP on http-base+i and for WebSocket on ws-base+i. Ctrl-C or SIGTERM stops them all (exit 0); if one node fails (e.g. a port is taken) the others are stopped and the command exits 1.',
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

/** Options every client command takes. */
export const CONNECT_OPTIONS: OptionSpec[] = [
  { name: 'server', short: 's', arg: 'host:port', default: '127.0.0.1:4480', help: 'Node to connect to; a comma-separated list is tried in order.' },
  { name: 'token', arg: 'token', help: 'Client token (or JWT) the node requires, if any.' },
];

export const PUB: CommandSpec = {
  name: 'pub',
  args: '<topic> <data>',
  summary: 'publish an event',
  description: 'Publishes <data> (UTF-8 text) on <topic>, a topic without wildcards, then exits once the node has received it.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'count', arg: 'n', default: '1', help: 'Publish the event this many times (1 or more).' },
    { name: 'header', arg: 'key=value', multiple: true, help: 'Add a header to the event; the value may be empty (key=).' },
  ],
};

export const SUB: CommandSpec = {
  name: 'sub',
  args: '<pattern>',
  summary: 'print the events of a topic pattern',
  description:
    'Subscribes to <pattern> (`*` matches one token, `>` one or more trailing tokens) and prints each event\'s payload on its own line (base64 if not UTF-8). Runs until --count events arrived, or Ctrl-C / SIGTERM.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'queue', arg: 'group', help: 'Join this queue group: each event goes to one member of the group.' },
    { name: 'count', arg: 'n', help: 'Exit 0 after this many events (1 or more); default: run until stopped.' },
  ],
};

export const REQ: CommandSpec = {
  name: 'req',
  args: '<topic> <data>',
  summary: 'send a request and print the reply',
  description: 'Sends <data> as a request on <topic> and prints the first reply. Exits 1 on timeout or when nobody serves the topic.',
  options: [...CONNECT_OPTIONS, { name: 'timeout', arg: 'ms', default: '5000', help: 'Give up waiting for a reply after this many milliseconds (1 or more).' }],
};

export const TRACE: CommandSpec = {
  name: 'trace',
  args: '<topic> <data>',
  summary: 'publish one traced event and show its path through the mesh',
  description:
    'Publishes <data> on <topic> with a trace id and prints, one line per node, where the event went and how long each node took. Exits 1 when no node reported the event.',
  options: [
    ...CONNECT_OPTIONS,
    { name: 'wait', arg: 'ms', default: '1000', help: 'Collect hop reports for this many milliseconds (1 or more).' },
    { name: 'json', help: 'Print the hops as JSON instead of a table.' },
  ],
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
