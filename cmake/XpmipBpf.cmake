# Build BPF C programs with clang and generate their libbpf skeletons with bpftool.
#
#   xpmip_add_bpf_skeleton(<name> <source.bpf.c>)
#
# compiles <source> into ${CMAKE_CURRENT_BINARY_DIR}/<name>.bpf.o (clang -target bpf -O2 -g,
# header dependencies tracked through a depfile, so editing a shared header in include/xpmip/
# rebuilds the object) and runs `bpftool gen skeleton` into ${XPMIP_SKEL_DIR}/<name>.skel.h.
# C++ targets link xpmip::bpf_skeletons to get the include path and the build ordering.

find_program(XPMIP_CLANG NAMES clang clang-14 REQUIRED)
find_program(XPMIP_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(XPMIP_SKEL_DIR ${CMAKE_BINARY_DIR}/generated/skel)
file(MAKE_DIRECTORY ${XPMIP_SKEL_DIR})

# asm/types.h lives in the multiarch include directory on Debian.
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch OUTPUT_VARIABLE XPMIP_MULTIARCH
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT XPMIP_MULTIARCH)
  set(XPMIP_MULTIARCH x86_64-linux-gnu)
endif()

string(REGEX REPLACE "^(x86_64|i.86)$" "x86" XPMIP_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
string(REGEX REPLACE "^aarch64$" "arm64" XPMIP_BPF_ARCH ${XPMIP_BPF_ARCH})

set(XPMIP_BPF_CFLAGS
    -target bpf -O2 -g -mcpu=v3
    -D__TARGET_ARCH_${XPMIP_BPF_ARCH}
    -I${CMAKE_SOURCE_DIR}/include
    -I${CMAKE_SOURCE_DIR}/bpf
    -I/usr/include/${XPMIP_MULTIARCH}
    -Wall -Wextra -Werror -Wno-unused-parameter)

add_library(xpmip_bpf_skeletons INTERFACE)
add_library(xpmip::bpf_skeletons ALIAS xpmip_bpf_skeletons)
target_include_directories(xpmip_bpf_skeletons SYSTEM INTERFACE ${XPMIP_SKEL_DIR})

function(xpmip_add_bpf_skeleton name source)
  get_filename_component(src ${source} ABSOLUTE)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(dep ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.d)
  set(skel ${XPMIP_SKEL_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${XPMIP_CLANG} ${XPMIP_BPF_CFLAGS} -MD -MF ${dep} -MT ${obj} -c ${src} -o ${obj}
    DEPENDS ${src}
    DEPFILE ${dep}
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${XPMIP_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "bpftool gen skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(bpf_${name} DEPENDS ${skel} ${obj})
  add_dependencies(xpmip_bpf_skeletons bpf_${name})
  set_property(GLOBAL APPEND PROPERTY XPMIP_BPF_OBJECTS ${obj})
endfunction()
