// '@meshbus/core/ws': the WebSocket gateway (the `ws` package). A subpath of
// its own so that importing the router, or running a node with the ws port
// off, never loads `ws` (issue #15 footprint); `meshbus start` imports it only
// when --ws-port is on.
export { WsGateway, startWsGateway, DEFAULT_WS_PORT, wsUrlProblem, type WsGatewayOptions } from '../ws-gateway.js';
export { WsTransport, wholeFrames } from '../ws-transport.js';
