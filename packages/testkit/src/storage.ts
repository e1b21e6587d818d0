// Filled in by the conformance-suite work for this capability.
export {};
