# cmake -DPAGE=xpmip|xpmip-lma|xpmip-mag -DXPMIP=<binary> -DHELP2MAN=<help2man> -DSRC=<source dir>
#       -DOUT=<page.8> -P man_page.cmake : one man page from the binary's --help (help2man) and, for a
# role, its example configuration as the CONFIGURATION section; written gzip'ed to OUT.gz.
get_filename_component(dir ${OUT} DIRECTORY)
set(work ${dir}/${PAGE}.work)
file(MAKE_DIRECTORY ${work})

# What help2man runs: the binary, or for a role a wrapper named after the page that asks the
# role's subcommand for its --help.
if(PAGE STREQUAL "xpmip")
  set(prog ${XPMIP})
  set(name "Proxy Mobile IPv6/IPv4 gateway (MAG and LMA) with an eBPF/XDP data plane")
  set(see "xpmip-lma(8), xpmip-mag(8), bpftool(8), ip(8)")
else()
  string(REPLACE "xpmip-" "" role ${PAGE})
  set(prog ${work}/${PAGE})
  # (its --version names it as the page: help2man titles the page by that first word)
  file(WRITE ${prog} "#!/bin/sh\nif [ \"$1\" = --version ]; then '${XPMIP}' --version | sed 's/^xpmip /${PAGE} /'; exit; fi\n"
       "exec '${XPMIP}' ${role} \"$@\"\n")
  file(CHMOD ${prog} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  string(TOUPPER ${role} ROLE)
  if(role STREQUAL "lma")
    set(name "the Local Mobility Anchor of xpmip (RFC 5213, RFC 5844, RFC 5845, RFC 8278)")
  else()
    set(name "the Mobile Access Gateway of xpmip (RFC 5213, RFC 5844, RFC 5845, RFC 8278)")
  endif()
  set(see "xpmip(8), systemd.service(5): the unit xpmip-${role}@.service runs /etc/xpmip/INSTANCE.yaml")
endif()

set(inc "[SEE ALSO]\n${see}\n.PP\nREADME: /usr/share/doc/xpmip/README.md\n")
if(DEFINED role)
  file(READ ${SRC}/examples/${role}.yaml yaml)
  # roff: backslashes escaped, a line starting with . or ' protected.
  string(REPLACE "\\" "\\e" yaml "${yaml}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" yaml "${yaml}")
  string(APPEND inc "[CONFIGURATION]\nThe ${ROLE} reads one YAML file (-c). Every key, with its default and meaning, as in\n"
         "/etc/xpmip/${role}.yaml (also /usr/share/doc/xpmip/examples/${role}.yaml):\n.PP\n.nf\n${yaml}.fi\n")
endif()
file(WRITE ${work}/include.h2m "${inc}")

execute_process(
    COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=8 --name=${name} --include=${work}/include.h2m
            --output=${OUT} ${prog}
    RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man for ${PAGE}: ${err}")
endif()
execute_process(COMMAND gzip -9nf ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip ${OUT} failed")
endif()
