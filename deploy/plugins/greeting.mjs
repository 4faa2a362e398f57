// A plugin module with no dependencies: a plain definition object (the runner passes it through
// definePlugin), so it needs no import of apisix-node-runner. Loaded by the image's runner from
// /opt/apisix-plugins.
//
// It sets a request header to the value of the GREETING environment variable. The runner is
// started by nginx, which removes every variable not listed under nginx_config.envs in the
// gateway's config.yaml: without that entry the header says so instead.
export default {
  name: 'greeting',
  parseConf(value) {
    const conf = value === '' ? {} : JSON.parse(value);
    if (conf.header !== undefined && (typeof conf.header !== 'string' || conf.header === '')) {
      throw new TypeError('"header" must be a non-empty string');
    }
    return {
      header: conf.header ?? 'x-greeting',
      greeting: process.env.GREETING ?? 'GREETING is not set (list it under nginx_config.envs)',
    };
  },
  requestFilter(conf, _req, res) {
    res.setHeader(conf.header, conf.greeting);
  },
};
