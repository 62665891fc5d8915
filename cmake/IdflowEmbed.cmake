# cmake -DIN=file -DOUT=file.cc -DSYMBOL=name -P IdflowEmbed.cmake
# Writes a C++ file defining `extern const unsigned char SYMBOL[]` and
# `extern const size_t SYMBOLSize` with the bytes of IN (a compiled BPF
# object embedded into the agent).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "// Generated from ${IN} by cmake/IdflowEmbed.cmake: do not edit.\n#include <cstddef>\nextern const unsigned char ${SYMBOL}[];\nextern const size_t ${SYMBOL}Size;\nalignas(8) const unsigned char ${SYMBOL}[] = {\n${bytes}};\nconst size_t ${SYMBOL}Size = ${size};\n")
