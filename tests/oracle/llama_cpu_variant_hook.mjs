// llama_cpu_variant_hook.mjs — a module resolve hook (node:module register)
// that sends one bare specifier to a fixed URL; registered by
// llama_cpu_variant.mjs to point @node-llama-cpp/linux-x64 at a copy of the
// package whose bins folder holds one llama.cpp CPU variant.
let target = null;

export async function initialize(data) {
  target = data;
}

export async function resolve(specifier, context, nextResolve) {
  if (target && specifier === target.specifier) return {url: target.url, shortCircuit: true};
  return nextResolve(specifier, context);
}
