// A small, strict command-line parser: `--name value`, `--name=value`, and
// boolean `--name`. Unknown flags and missing values are errors, so every
// binary can exit 2 with the reason (DESIGN §6).
#ifndef IDFLOW_COMMON_FLAGS_H_
#define IDFLOW_COMMON_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace idflow {

class FlagSet {
 public:
  // A flag taking a value; `help` shows in Usage().
  void Add(const std::string& name, std::string default_value, std::string help);
  // A flag without value; true when present.
  void AddBool(const std::string& name, std::string help);

  // Parses argv[first..]. Stops at `--`; the rest goes to Positional().
  // With `allow_positional` false, a non-flag argument is an error.
  absl::Status Parse(int argc, char** argv, int first = 1, bool allow_positional = false);

  const std::string& Get(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  bool IsSet(const std::string& name) const;
  // Flags given more than once accumulate here in order (e.g. --consent).
  const std::vector<std::string>& GetAll(const std::string& name) const;
  const std::vector<std::string>& Positional() const { return positional_; }
  std::string Usage() const;

 private:
  struct Flag {
    bool is_bool = false;
    std::string value;
    std::string help;
    bool set = false;
    std::vector<std::string> all;
  };
  std::map<std::string, Flag> flags_;
  std::vector<std::string> positional_;
};

}  // namespace idflow

#endif  // IDFLOW_COMMON_FLAGS_H_
