// One Vercel AI SDK scenario call against tests/fakeprovider.py, exported over OTLP/HTTP protobuf.
//
// Run by scripts/capture_node.py, one process per scenario (so one call = one trace body):
//   node capture.mjs '{"telemetry": "otel"|"legacy", "scenario": "...", "baseUrl": "...",
//                      "otlp": "http://127.0.0.1:PORT", "service": "capture-vercel-ai"}'
// Prints one JSON line: {"error": null} or {"error": {"name", "message", "statusCode"}}.
// The calls mirror tests/emitters.py (same prompts, markers and models).
import { createOpenAI } from '@ai-sdk/openai';
import { LegacyOpenTelemetry, OpenTelemetry } from '@ai-sdk/otel';
import { trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { embed, embedMany, generateObject, generateText, registerTelemetry, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const config = JSON.parse(process.argv[2]);
const { scenario } = config;

const provider = new TracerProvider({
  resource: resourceFromAttributes({ 'service.name': config.service }),
  spanProcessors: [
    new BatchSpanProcessor({
      exporter: new OTLPTraceExporter({ url: `${config.otlp}/v1/traces` }),
      scheduledDelayMillis: 600000, // export only on forceFlush
      maxExportBatchSize: 512,
    }),
  ],
});
trace.setGlobalTracerProvider(provider);
registerTelemetry(config.telemetry === 'legacy' ? new LegacyOpenTelemetry() : new OpenTelemetry());

const prompt = `Please answer briefly. SECRET-PROMPT-${scenario}-7f3a`;
const system = `You are a terse assistant. SECRET-SYSTEM-${scenario}-7f3a`;
const openai = createOpenAI({
  baseURL: `${config.baseUrl}/v1`,
  apiKey: 'sk-fake-capture',
  headers: { 'X-Fake-Scenario': scenario },
});
const telemetry = { isEnabled: true, recordInputs: true, recordOutputs: true, functionId: `capture-${scenario}` };
const common = { system, prompt, maxRetries: 0, experimental_telemetry: telemetry };
const MODELS = {
  'chat-cached': 'gpt-4o',
  'chat-cache-write': 'gpt-4o',
  'chat-reasoning': 'o3-mini',
  embeddings: 'text-embedding-3-small',
  'embeddings-many': 'text-embedding-3-small',
};
const model = MODELS[scenario] ?? 'gpt-4o-mini';

// get_weather, with an execute the SDK runs (a tool loop) or without (the tool call ends the step)
const weather = (execute) => ({
  get_weather: tool({
    description: 'Current weather for a city',
    inputSchema: z.object({ city: z.string() }),
    ...(execute ? { execute } : {}),
  }),
});
const chat = (settings) => ({ model: openai.chat(model), ...common, maxOutputTokens: 100, ...settings });

async function run() {
  switch (scenario) {
    case 'chat':
    case 'chat-cached':
    case 'chat-cache-write':
    case 'chat-error-400':
    case 'chat-error-429':
      await generateText(chat({ temperature: 0.2 }));
      break;
    case 'chat-stream': {
      // @ai-sdk/openai's chat model asks for stream_options.include_usage itself
      const result = streamText(chat({ temperature: 0.2 }));
      for await (const _ of result.textStream) {
      }
      await result.usage;
      break;
    }
    case 'chat-reasoning':
      await generateText(chat({ maxOutputTokens: 2000, providerOptions: { openai: { reasoningEffort: 'medium' } } }));
      break;
    case 'chat-tools':
      await generateText(chat({ tools: weather(), toolChoice: 'auto' }));
      break;
    case 'agent-tools':
      // two model calls (the tool call, then the answer) in one generateText
      await generateText(chat({ tools: weather(async ({ city }) => `Sunny in ${city}`), stopWhen: stepCountIs(2) }));
      break;
    case 'chat-object':
      await generateObject(chat({ schema: z.object({ answer: z.string() }), schemaName: 'answer' }));
      break;
    case 'embeddings':
      await embed({ model: openai.embedding(model), value: prompt, maxRetries: 0, experimental_telemetry: telemetry });
      break;
    case 'embeddings-many':
      await embedMany({
        model: openai.embedding(model),
        values: [prompt, `Second input. SECRET-PROMPT-${scenario}-7f3a`],
        maxRetries: 0,
        experimental_telemetry: telemetry,
      });
      break;
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
}

let error = null;
try {
  await run();
} catch (exc) {
  error = { name: exc?.name ?? String(exc), message: String(exc?.message ?? exc), statusCode: exc?.statusCode ?? null };
}
await provider.forceFlush();
await provider.shutdown();
console.log(JSON.stringify({ error }));
