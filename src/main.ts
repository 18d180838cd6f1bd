import { mount } from 'svelte'
import App from './ui/App.svelte'
import { app } from './ui/app-state.svelte.js'

mount(App, { target: document.getElementById('app')! })
void app.start()

if ('serviceWorker' in navigator && import.meta.env.PROD) {
  navigator.serviceWorker.register('/sw.js').catch((err: unknown) => {
    console.warn('service worker not registered:', err)
  })
}
