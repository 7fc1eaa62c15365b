#include "server/app.h"

int main(int argc, char** argv) { return llmscope::server::Main(argc, argv); }
