/** Counters of one node, read by the HTTP API and the metrics endpoint. */
export interface NodeStats {
  msgsIn: number;
  msgsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Events accepted with no receiver anywhere. */
  noInterest: number;
  slowConsumers: number;
  staleConnections: number;
  authFailures: number;
  protocolErrors: number;
  errorsSent: number;
  connectionsTotal: number;
  connectionsRefused: number;
  dropped: { slow: number };
}

export function newStats(): NodeStats {
  return {
    msgsIn: 0,
    msgsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    noInterest: 0,
    slowConsumers: 0,
    staleConnections: 0,
    authFailures: 0,
    protocolErrors: 0,
    errorsSent: 0,
    connectionsTotal: 0,
    connectionsRefused: 0,
    dropped: { slow: 0 },
  };
}
