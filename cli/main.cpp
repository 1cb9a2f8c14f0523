// alumia-connect: the CLI. One context, one build_app(), one try.
#include "app.hpp"

#include <signal.h>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  using namespace alumia::cli;
  ::signal(SIGPIPE, SIG_IGN);  // `alumia-connect ... | head` must not kill us mid-request
  CliContext ctx(alumia::process_env(), std::cin, std::cout, std::cerr, detect_terminal());
  std::unique_ptr<CLI::App> app;
  try {
    app = build_app(ctx);
    app->parse(argc, argv);
    return ctx.run();
  } catch (const CLI::ParseError& e) {
    return report_parse_error(*app, e, ctx);
  } catch (const std::exception& e) {
    std::cerr << "alumia-connect: error: " << terminal_safe(e.what()) << '\n';
    return alumia::k_exit_error;
  }
}
