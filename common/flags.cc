#include "common/flags.h"

#include "absl/strings/str_cat.h"

namespace idflow {

void FlagSet::Add(const std::string& name, std::string default_value, std::string help) {
  flags_[name] = Flag{false, std::move(default_value), std::move(help), false, {}};
}

void FlagSet::AddBool(const std::string& name, std::string help) {
  flags_[name] = Flag{true, "false", std::move(help), false, {}};
}

absl::Status FlagSet::Parse(int argc, char** argv, int first, bool allow_positional) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional_.push_back(argv[i]);
      break;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      if (!allow_positional)
        return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto it = flags_.find(name);
    if (it == flags_.end())
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    Flag& f = it->second;
    if (f.is_bool) {
      if (has_value && value != "true" && value != "false") {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      f.value = has_value ? value : "true";
    } else {
      if (!has_value) {
        if (i + 1 >= argc)
          return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
        value = argv[++i];
      }
      f.value = value;
    }
    f.set = true;
    f.all.push_back(f.value);
  }
  return absl::OkStatus();
}

const std::string& FlagSet::Get(const std::string& name) const { return flags_.at(name).value; }
bool FlagSet::GetBool(const std::string& name) const { return flags_.at(name).value == "true"; }
bool FlagSet::IsSet(const std::string& name) const { return flags_.at(name).set; }
const std::vector<std::string>& FlagSet::GetAll(const std::string& name) const {
  return flags_.at(name).all;
}

std::string FlagSet::Usage() const {
  std::string out;
  for (const auto& [name, f] : flags_) {
    absl::StrAppend(&out, "  --", name, f.is_bool ? "" : " VALUE", "\n      ", f.help);
    if (!f.is_bool && !f.value.empty()) absl::StrAppend(&out, " (default: ", f.value, ")");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace idflow
