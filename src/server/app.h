#pragma once

namespace llmscope::server {

// The `llmscope` command line: serve, simulate, config check, version, help.
// Returns the process exit code. The only place that names concrete types and wires them.
int Main(int argc, char** argv);

}  // namespace llmscope::server
