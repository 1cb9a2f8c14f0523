// alumia-connectd: everything is in the daemon library (daemon.hpp), so that tests can build it too.
#include "daemon.hpp"

int main(int argc, char** argv) { return alumia::daemon::run(argc, argv); }
