# cmake -DIN=a.proto -DOUT=b.proto -P strip_weak_imports.cmake
# Copies a .proto with `import weak "x";` turned into `import "x";`.
# containerd's and gogo's files import gogo.proto and fieldpath.proto weakly
# (Go's protoc plugin lets a weak import be absent at link time); protoc's
# C++ generator refuses weak imports in the open-source runtime ("CHECK
# failed: !options_.opensource_runtime"). A plain import only means the
# option files' generated code is linked too, which it is.
file(READ "${IN}" text)
string(REGEX REPLACE "(^|\n)import weak " "\\1import " text "${text}")
file(WRITE "${OUT}" "${text}")
