# Embed a file as a NUL-terminated C char array: cmake -DIN=file -DOUT=file.c -DNAME=symbol -P Embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}" "/* generated from ${IN} by cmake/Embed.cmake: do not edit */\nconst char ${NAME}[] = {${bytes}0x00};\n")
