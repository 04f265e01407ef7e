// The build facts a certification records. CMake passes them to this file alone
// (harness/certify/CMakeLists.txt), so that a new commit recompiles nothing else.
#include "harness/certify/certification.hpp"

#ifndef MDMC_BUILD_COMPILER
#define MDMC_BUILD_COMPILER ""
#endif
#ifndef MDMC_BUILD_TYPE
#define MDMC_BUILD_TYPE ""
#endif
#ifndef MDMC_GIT_COMMIT
#define MDMC_GIT_COMMIT ""
#endif

namespace mdmc::certify {

Build this_build() { return Build{MDMC_VERSION, MDMC_BUILD_COMPILER, MDMC_BUILD_TYPE, MDMC_GIT_COMMIT}; }

}  // namespace mdmc::certify
