/** The built-in plugins, loaded in every runner. */
import type { Plugin } from '../plugin.js';
import faultInjection from './fault-injection.js';
import headerRewrite from './header-rewrite.js';
import limitReq from './limit-req.js';
import requestBodyRewrite from './request-body-rewrite.js';
import responseRewrite from './response-rewrite.js';
import say from './say.js';

export const builtinPlugins: readonly Plugin[] = [
  say,
  faultInjection,
  limitReq,
  requestBodyRewrite,
  responseRewrite,
  headerRewrite,
];
