// Every binary's command line, on Abseil flags (ABSL_FLAG next to the code that reads
// them): `--help` lists this program's flags with their types and defaults,
// `--helpfull` adds Abseil's own, `--flagfile=FILE` reads `--flag=value` lines, and an
// unknown flag or a value of the wrong type is refused with a message naming it.
//
// Abseil of Debian 12 (20220623) exits with status 1 after --help (newer releases
// exit 0); here --help exits 0, as scripts and package checks expect, because the usage
// flags are handled after parsing instead of by absl::ParseCommandLine.
#ifndef SPARSEPOOL_COMMON_COMMAND_LINE_H_
#define SPARSEPOOL_COMMON_COMMAND_LINE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace sparsepool {

// Parses argv's flags; prints usage and exits 0 after --help (and its variants), or
// prints what was wrong and exits 1 (Abseil's parser: an unknown flag, a value that is
// not of the flag's type). Values the program itself refuses exit 2, by convention here. `usage` opens --help: what the program does and
// its synopsis. Returns the positional arguments, without the program name.
std::vector<std::string> ParseCommandLine(int argc, char** argv, absl::string_view usage);

// The same for a program that takes no positional argument: one is refused (exit 2).
void ParseFlagsOnly(int argc, char** argv, absl::string_view usage);

// A value the flag's type admits but the program does not: prints "PROGRAM: bad argument
// --FLAG=VALUE: WHY (--help lists the flags)" on stderr and returns 2, the exit status
// for it (PROGRAM as the parsed command line named it).
int RefuseFlagValue(absl::string_view flag, absl::string_view value, absl::string_view why);

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_COMMAND_LINE_H_
