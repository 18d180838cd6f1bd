/**
 * gossipsub as discovery's transport. Adverts carry their own signature (see discovery-service),
 * so gossipsub sends them unsigned and names each message by its hash. Relays are the backbone:
 * their mesh takes every subscribed peer, so an advert reaches a relay's peers in one hop instead
 * of waiting for lazy gossip.
 */
import { gossipsub } from '@libp2p/gossipsub'
import { sha256 } from '@noble/hashes/sha2.js'
import { DISCOVERY_TOPIC } from '../core/discovery/codec.js'
import type { GossipSub, GossipSubComponents } from '@libp2p/gossipsub'

export type GossipRole = 'peer' | 'relay'

/** Largest gossipsub RPC frame read from a peer: room for hundreds of adverts in one batch. */
const MAX_RPC_BYTES = 1024 * 1024
/**
 * Most bytes queued for one peer that is not reading. gossipsub writes without waiting for
 * back-pressure and yamux queues without limit, so a subscriber that stops reading would pin every
 * advert sent after it stopped; past this its stream is reset and the bytes freed. 2 MiB is
 * thousands of adverts behind, far more than an honest peer ever lags.
 */
export const MAX_OUTBOUND_BUFFER_BYTES = 2 * 1024 * 1024

export function discoveryGossip (role: GossipRole): (components: GossipSubComponents) => GossipSub {
  const relay = role === 'relay'
  return gossipsub({
    globalSignaturePolicy: 'StrictNoSign',
    msgIdFn: (msg) => sha256(msg.data),
    allowedTopics: [DISCOVERY_TOPIC],
    allowPublishToZeroTopicPeers: true,
    // This bounds a whole RPC frame (several adverts and control messages batched), not one
    // message: a frame over it drops the peer from gossipsub while the connection stays up. Each
    // advert is bounded to MAX_ADVERT_BYTES by the discovery validator.
    maxInboundDataLength: MAX_RPC_BYTES,
    maxOutboundBufferSize: MAX_OUTBOUND_BUFFER_BYTES,
    runOnLimitedConnection: false,
    // Many tabs share one address behind a NAT (and every test peer is on 127.0.0.1): the
    // per-address penalty would silence them all.
    scoreParams: { IPColocationFactorWeight: 0 },
    ...(relay ? { D: 64, Dlo: 8, Dhi: 4096, Dout: 2, Dscore: 4 } : {})
  })
}
