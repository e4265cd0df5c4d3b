# Install rules (`cmake --install`) and the Debian package (scripts/package.sh,
# CPack): the binary, a man page per command, bash completion and the
# systemd template unit corfs@.service.

include(GNUInstallDirs)

install(TARGETS corfs RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(FILES ${PROJECT_SOURCE_DIR}/packaging/corfs.bash-completion
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME corfs)

# The unit names the binary by its installed path, which is only known when
# installing (CPack installs with its own prefix, /usr, not the build's), so
# it is written there and then rather than copied from the build folder.
# systemd reads units from PREFIX/lib/systemd/system for /usr and /usr/local.
install(CODE "
  set(CORFS_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(unit \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system/corfs@.service\")
  message(STATUS \"Installing: \${unit}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/packaging/corfs@.service.in\" \"\${unit}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${unit}\")
")

# Man pages from the commands' --help (packaging/man-pages.sh), made with
# every build of the binary so they never describe an older one.
find_program(HELP2MAN help2man)
if(HELP2MAN)
  # build/man is a MANPATH entry (man/man1/*.1.gz) for `man` and for
  # `systemd-analyze verify`, which checks the unit's Documentation= pages.
  set(CORFS_MAN_DIR ${PROJECT_BINARY_DIR}/man/man1)
  add_custom_command(
    OUTPUT ${CORFS_MAN_DIR}/stamp
    COMMAND bash ${PROJECT_SOURCE_DIR}/packaging/man-pages.sh $<TARGET_FILE:corfs> ${PROJECT_VERSION} ${CORFS_MAN_DIR}
    COMMAND ${CMAKE_COMMAND} -E touch ${CORFS_MAN_DIR}/stamp
    DEPENDS corfs ${PROJECT_SOURCE_DIR}/packaging/man-pages.sh
    COMMENT "Generating man pages with help2man"
    VERBATIM)
  add_custom_target(man-pages ALL DEPENDS ${CORFS_MAN_DIR}/stamp)
  install(DIRECTORY ${CORFS_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 FILES_MATCHING PATTERN "*.1.gz")
else()
  message(STATUS "help2man not found: no man pages (scripts/install-deps.sh installs it)")
endif()

# corfs_VERSION_amd64.deb. Its library dependencies (libfuse3, libsystemd,
# TBB, yaml-cpp, ...) come from dpkg-shlibdeps on the binary; fuse3 brings
# fusermount3, which unmounts a stale mount.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME corfs)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "FUSE filesystem presenting disk images as copy-on-read overlays")
string(JOIN "\n" CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "corfs serves disk images as files whose data lives in local overlays: reading"
  "a cluster the overlay lacks copies it from a chain of backing images, writes"
  "go to the overlay, and background block jobs stream the rest until the"
  "overlay stands alone. The template unit corfs@NAME.service mounts"
  "/etc/corfs/NAME.yaml.")
set(CPACK_PACKAGE_CONTACT "corfs developers <corfs@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "bash-completion")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_OUTPUT_FILE_PREFIX ${PROJECT_BINARY_DIR}/packages)
include(CPack)
