import { ProtocolError, topicHash, topicProblem, type Frame, type TopicLimits } from '@meshbus/proto';

/**
 * The routing table's topic decoder for events entering the node (it runs
 * once per topic, on a route-cache miss): the topic must be valid under
 * `limits` and its header hash must be the hash of its bytes. Throws
 * ProtocolError MB_ERR_BAD_TOPIC or MB_ERR_BAD_HASH.
 */
export function checkedTopicDecoder(limits: TopicLimits): (f: Frame) => string {
  return (f) => {
    const topic = f.topic;
    const problem = topicProblem(topic, false, limits);
    if (problem) throw new ProtocolError('MB_ERR_BAD_TOPIC', problem);
    if (topicHash(f.topicBytes) !== f.topicHash) throw new ProtocolError('MB_ERR_BAD_HASH', `for topic "${topic}"`);
    return topic;
  };
}
