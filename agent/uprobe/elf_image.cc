#include "agent/uprobe/elf_image.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace idflow::agent {

absl::StatusOr<ElfImage> ReadElfImage(const std::string& path,
                                      const std::vector<std::string>& names) {
  if (elf_version(EV_CURRENT) == EV_NONE) return absl::InternalError("libelf: no version");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  auto done = [&](absl::StatusOr<ElfImage> r) {
    if (elf != nullptr) elf_end(elf);
    ::close(fd);
    return r;
  };
  if (elf == nullptr || elf_kind(elf) != ELF_K_ELF) {
    return done(absl::InvalidArgumentError(absl::StrCat(path, ": not an ELF object")));
  }
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) {
    return done(absl::InvalidArgumentError(absl::StrCat(path, ": no program headers")));
  }
  ElfImage image;
  bool any = false;
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_LOAD) continue;
    const uint64_t lo = ph.p_vaddr & ~uint64_t{0xfff};
    const uint64_t hi = ph.p_vaddr + ph.p_memsz;
    if (hi < ph.p_vaddr) continue;  // wraps
    image.lo_vaddr = any ? std::min(image.lo_vaddr, lo) : lo;
    image.hi_vaddr = any ? std::max(image.hi_vaddr, hi) : hi;
    any = true;
  }
  if (!any) return done(absl::InvalidArgumentError(absl::StrCat(path, ": no loadable segment")));
  // .symtab first (static binaries, Go), then .dynsym (exported, e.g. node).
  for (const Elf64_Word type : {SHT_SYMTAB, SHT_DYNSYM}) {
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
      GElf_Shdr sh;
      if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != type || sh.sh_entsize == 0) continue;
      if (type == SHT_SYMTAB) image.has_symtab = true;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (data == nullptr) continue;
      const size_t count = sh.sh_size / sh.sh_entsize;
      for (size_t k = 0; k < count; ++k) {
        GElf_Sym sym;
        if (gelf_getsym(data, static_cast<int>(k), &sym) == nullptr) break;
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF ||
            sym.st_value == 0) {
          continue;
        }
        const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
        if (name == nullptr) continue;
        for (const std::string& want : names) {
          if (want == name) image.symbols.emplace(want, sym.st_value);
        }
      }
    }
  }
  return done(image);
}

}  // namespace idflow::agent
