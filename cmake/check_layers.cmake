# The layer rule of docs/ARCHITECTURE.md, checked on every build (target check_layers) and by ctest
# (architecture_layers, and architecture_layers_catches_violation on a planted wrong include):
#   core (engine/, kernels/)  <-  models/  <-  io/  <-  finetune/  <-  tools/
# A source in a layer may include headers of its own layer and of the layers to its left, never of a
# layer to its right. engine/ and kernels/ are one layer: a Tensor method dispatches through
# kernels/ops.h and every kernel takes Tensors. tests/ and bench/ may include anything.
#
# Usage: cmake -DRTUNE_LAYERS_ROOT=<source dir> -P cmake/check_layers.cmake
if(NOT RTUNE_LAYERS_ROOT)
  message(FATAL_ERROR "check_layers: set -DRTUNE_LAYERS_ROOT=<source dir>")
endif()
set(_rank_engine 0)
set(_rank_kernels 0)
set(_rank_models 1)
set(_rank_io 2)
set(_rank_finetune 3)
set(_rank_tools 4)
set(_layers engine kernels models io finetune tools)

set(_violations "")
foreach(layer ${_layers})
  file(GLOB_RECURSE _files RELATIVE ${RTUNE_LAYERS_ROOT}
       ${RTUNE_LAYERS_ROOT}/${layer}/*.h ${RTUNE_LAYERS_ROOT}/${layer}/*.cpp
       ${RTUNE_LAYERS_ROOT}/${layer}/*.cu ${RTUNE_LAYERS_ROOT}/${layer}/*.cuh)
  foreach(f ${_files})
    file(STRINGS ${RTUNE_LAYERS_ROOT}/${f} _includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"[a-z_]+/")
    foreach(line ${_includes})
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([a-z_]+)/.*$" "\\1" target_layer "${line}")
      if(DEFINED _rank_${target_layer} AND _rank_${target_layer} GREATER _rank_${layer})
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\".*$" "\\1" header "${line}")
        string(APPEND _violations "\n  ${f} (${layer}/) includes ${header} (${target_layer}/, a layer above it)")
      endif()
    endforeach()
  endforeach()
endforeach()

if(_violations)
  message(FATAL_ERROR "layer rule broken (docs/ARCHITECTURE.md: core <- models <- io <- finetune <- tools):"
                      "${_violations}")
endif()
