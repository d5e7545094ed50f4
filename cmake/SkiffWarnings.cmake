# Warnings as errors on Skiff's own code, and the sanitizer build.
# Sections per function so the linker drops what the programs never call:
# less text mapped, less resident per VMM.
add_compile_options(-ffunction-sections -fdata-sections)
function(skiff_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror)
endfunction()

if(SKIFF_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(SKIFF_FUZZ)
  # Coverage instrumentation for the code under test too, not just the target.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# Link options for the programs we ship: jemalloc as the allocator (the
# sanitizers bring their own), static C++ runtime.
function(skiff_binary target)
  if(NOT SKIFF_SANITIZE)
    target_link_libraries(${target} PRIVATE ${JEMALLOC_STATIC} ${CMAKE_DL_LIBS})
  endif()
  target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc -Wl,--gc-sections)
endfunction()
