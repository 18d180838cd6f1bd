import { mount } from 'svelte'
import App from './ui/App.svelte'
import { app } from './ui/app-state.svelte.js'
import { scriptingApi } from './browser/scripting.js'

mount(App, { target: document.getElementById('app')! })
void app.start()
window.p2pAgents = scriptingApi(() => app.tab)

if ('serviceWorker' in navigator && import.meta.env.PROD) {
  navigator.serviceWorker.register('/sw.js').catch((err: unknown) => {
    console.warn('service worker not registered:', err)
  })
}
