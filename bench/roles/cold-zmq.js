'use strict'
// Cold start baseline: the cost of loading the native zeromq addon and nothing else.
require('zeromq')
