/** Which view the page shows, from the URL's hash, so every view has a link of its own (#/network, #/jobs). */
export type View = 'work' | 'network' | 'jobs'

const VIEWS: readonly View[] = ['work', 'network', 'jobs']

function fromHash (hash: string): View {
  const name = hash.replace(/^#\/?/, '')
  return (VIEWS as readonly string[]).includes(name) ? name as View : 'work'
}

class Route {
  view = $state<View>(typeof location === 'undefined' ? 'work' : fromHash(location.hash))

  constructor () {
    if (typeof addEventListener === 'function') addEventListener('hashchange', () => { this.view = fromHash(location.hash) })
  }

  href (view: View): string {
    return view === 'work' ? '#/' : `#/${view}`
  }
}

export const route = new Route()
