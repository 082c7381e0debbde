/** Injection tokens of the Clientele module, exported so other modules (projections, Kafka) can share them. */
export const EVENT_STORE = Symbol('clientele.event-store');
export const LIFECYCLE_POLICY = Symbol('clientele.lifecycle-policy');
export const CHECKPOINT_STORE = Symbol('clientele.checkpoint-store');
export const CLIENTELE_OPTIONS = Symbol('clientele.options');
