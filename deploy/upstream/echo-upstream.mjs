// The demo upstream of docker-compose.yml: answers every request with what it received as JSON,
// so the headers the runner's plugins set are visible in the response.
import { createServer } from 'node:http';

const PORT = Number(process.env.PORT ?? 8080);

createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = JSON.stringify(
      { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') },
      null,
      2,
    );
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`${body}\n`);
  });
}).listen(PORT, () => console.log(`echo upstream listening on ${PORT}`));
