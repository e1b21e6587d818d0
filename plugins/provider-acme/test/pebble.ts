// Pebble now lives in the testkit so the gateway's TLS tests start the same CA.
export { type Pebble, startPebble } from '@apigate/provider-testkit';
