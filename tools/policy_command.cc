#include <iostream>

#include "tools/commands.h"

namespace idflow::tools {

int PolicyCommand(int argc, char** argv) {
  std::cerr << "idflowctl policy: usage: idflowctl policy import|lint|diff|explain ...\n";
  return 2;
}

}  // namespace idflow::tools
