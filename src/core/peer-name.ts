/**
 * A short, human-readable name for a peer id ("amber-otter-3f"): people compare and remember words
 * better than base58. Derived from sha256 of the id, so every tab and every CLI names a peer the same
 * way with no coordination; 128 adjectives × 128 animals × 256 suffixes = 2^22 names. Names can
 * collide (about one pair among 3,000 peers), so wherever a name identifies a peer the short id is
 * shown next to it.
 */
import { sha256 } from '@noble/hashes/sha2.js'

const ADJECTIVES = (
  'amber azure bold brave brisk calm clever coral cosmic crimson curious dapper daring dusty eager early ' +
  'ember fancy fast fierce fluffy frosty gentle gilded glad golden grand happy hardy hazel honest humble ' +
  'icy indigo jade jolly keen kind lavish lemon lilac little lively lucky lunar mellow merry mighty ' +
  'misty modest mossy neat nimble noble ocean olive onyx pale peach plucky polar proud quick quiet ' +
  'rapid rosy royal ruby rustic sable sage sandy scarlet shady sharp shiny silent silver sleek smart ' +
  'snowy solar sonic spicy steady stormy sunny swift tawny teal tidy tiny topaz tranquil true vivid ' +
  'warm wavy wild windy wise witty young zany zesty velvet violet urban upbeat tender sturdy sparkly ' +
  'rainy prime plain noisy minty lofty jazzy ivory hidden frank fuzzy cheery breezy bright cobalt dreamy'
).split(' ')

const ANIMALS = (
  'otter badger beaver bison bobcat camel canary caribou cheetah cobra condor cougar coyote crane cricket crow ' +
  'deer dingo dolphin donkey dove dragon duck eagle egret elk falcon ferret finch flamingo fox frog ' +
  'gazelle gecko gibbon giraffe goat goose gopher gorilla grouse gull hamster hare hawk hedgehog heron hippo ' +
  'hornet horse hound ibex ibis iguana impala jackal jaguar jay kestrel kiwi koala lark lemur leopard ' +
  'lion lizard llama lobster lynx magpie marmot marten meerkat mink mole moose moth mouse mule newt ' +
  'ocelot octopus oriole oryx osprey owl panda panther parrot pelican penguin pigeon puffin puma python quail ' +
  'rabbit raven robin salmon seal shark sheep shrew skunk sloth snail sparrow spider squid stork swan ' +
  'tapir tiger toad toucan trout turtle viper walrus wasp weasel whale wolf wombat wren yak zebra'
).split(' ')

const encoder = new TextEncoder()

/** "adjective-animal-xx" for a peer id string; the same id always gives the same name. */
export function peerName (peerId: string): string {
  const digest = sha256(encoder.encode(peerId))
  const adjective = ADJECTIVES[digest[0] & 127]
  const animal = ANIMALS[digest[1] & 127]
  return `${adjective}-${animal}-${digest[2].toString(16).padStart(2, '0')}`
}

/** The last characters of a peer id: every peer id starts alike ("12D3KooW…"), its tail tells them apart. */
export function shortPeerId (peerId: string): string {
  return peerId.length <= 8 ? peerId : `…${peerId.slice(-6)}`
}

/** How many distinct names exist (for the stated collision rate and its test). */
export const PEER_NAME_SPACE = ADJECTIVES.length * ANIMALS.length * 256
