# Fails unless README.md contains examples/minimal.cpp verbatim (the README shows compiled code).
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
string(FIND "${readme}" "${example}" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "README.md does not contain examples/minimal.cpp verbatim: update the README's example")
endif()
