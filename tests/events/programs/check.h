/* The shared CHECK macro (tests/net/programs/check.h). */
#include "../../net/programs/check.h"
