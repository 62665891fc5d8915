// What the TLS uprobe source needs from an object file: the span of its
// PT_LOAD segments and the values of a few function symbols (from .symtab,
// else .dynsym), read with libelf. With them a probed write is attributed
// to its object even when the process is gone before the write is read
// (ProbedModule in tls_write.h).
#ifndef IDFLOW_AGENT_UPROBE_ELF_IMAGE_H_
#define IDFLOW_AGENT_UPROBE_ELF_IMAGE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace idflow::agent {

struct ElfImage {
  uint64_t lo_vaddr = 0;                    // lowest PT_LOAD address (page-aligned down)
  uint64_t hi_vaddr = 0;                    // end of the highest PT_LOAD segment
  std::map<std::string, uint64_t> symbols;  // of `names`, the defined functions found
  bool has_symtab = false;                  // false: stripped, only exported functions can be found
};

// NotFound / InvalidArgument naming the path when it cannot be read as an
// ELF object with loadable segments.
absl::StatusOr<ElfImage> ReadElfImage(const std::string& path,
                                      const std::vector<std::string>& names);

}  // namespace idflow::agent

#endif  // IDFLOW_AGENT_UPROBE_ELF_IMAGE_H_
