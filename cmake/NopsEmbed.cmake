# nops_embed(OUT_VAR FILE SYMBOL): compile FILE in as `const char SYMBOL[]` (NUL-terminated, by
# cmake/Embed.cmake at build time); the generated source's path goes to OUT_VAR.
function(nops_embed out_var file symbol)
  get_filename_component(abs ${file} ABSOLUTE)
  get_filename_component(name ${file} NAME)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${symbol}.c)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${abs} -DOUT=${out} -DNAME=${symbol}
            -P ${PROJECT_SOURCE_DIR}/cmake/Embed.cmake
    DEPENDS ${abs} ${PROJECT_SOURCE_DIR}/cmake/Embed.cmake
    COMMENT "Embedding ${name}")
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()
