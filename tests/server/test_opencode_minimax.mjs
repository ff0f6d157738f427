// test_opencode_minimax.mjs — tests/server/test_opencode.mjs (the real
// OpenCode, two turns) against a MiniMax-M2-shaped mixture-of-experts model
// serving MiniMax-M2's chat template: its <minimax:tool_call> syntax is the
// one the server parses, and turn 2 must still come from the cache.
process.env.OPENCODE_MODEL = "minimax-m2";
await import("./test_opencode.mjs");
