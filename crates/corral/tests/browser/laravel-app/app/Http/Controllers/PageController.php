<?php
namespace App\Http\Controllers;

use Illuminate\Http\Request;
use Illuminate\Routing\Controller;
use Illuminate\Support\Facades\Cache;

/** The page bench/run.sh measures: session, cache and a Blade layout. */
class PageController extends Controller
{
    public function show(Request $request)
    {
        $visits = $request->session()->increment('visits');
        // What an app keeps in its cache instead of querying for it again.
        $items = Cache::remember('bench.items', 3600, function () {
            $out = [];
            for ($i = 1; $i <= 20; $i++) {
                $out[] = ['id' => $i, 'title' => "Item $i", 'price' => $i * 1.25];
            }
            return $out;
        });
        return view('page', [
            'name' => config('app.name'),
            'visits' => $visits,
            'items' => $items,
            'laravel' => app()->version(),
        ]);
    }
}
