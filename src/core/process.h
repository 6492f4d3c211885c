// Running a helper program (docker-credential-*, in tests mkfs and friends):
// argv, not a shell; stdin given, stdout captured, a time limit.
#pragma once

#include <string>
#include <vector>

namespace kiln {

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal or the time limit
  std::string out;
  std::string err;
};

// Throws EnvError if the program cannot be started.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::string& input, int timeout_seconds = 60);
// Whether `name` is an executable on PATH.
bool OnPath(const std::string& name);

}  // namespace kiln
