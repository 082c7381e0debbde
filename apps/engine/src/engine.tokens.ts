export const ENGINE_CONFIG = Symbol('clientele.engine-config');
export const ENGINE_STORAGE = Symbol('clientele.engine-storage');
