// fleetplan: the command-line client. All logic lives in RunCli (clients/cli.cc) so tests can
// drive it in-process as well as through the binary.
#include <iostream>
#include <string>
#include <vector>

#include "clients/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return fleetplan::cli::RunCli(args, std::cout, std::cerr);
}
