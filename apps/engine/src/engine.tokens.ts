export const ENGINE_CONFIG = Symbol('clientele.engine-config');
